"""The GAN: models, training loop, sampling."""
