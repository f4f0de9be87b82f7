"""What a cluster is asked for, and whether it can ever give it: the SLURM preflight.

`requests`: each planned job as the SLURM executor plugin will submit it (partition, CPUs,
memory, time, GPUs, nodes; or on the login node). `slurm`: what the cluster offers, read from
`scontrol`. `preflight`: the jobs that can never start and the setting to change, as one table;
run from the workflow's `onstart` with the SLURM executor, and on its own as
`python -m pipeline.cluster` (the table of where each job goes).
"""
