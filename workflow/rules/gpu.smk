# GPU jobs, one per card. Rules that may run on a GPU declare `resources: gpu=gpus_for(DEVICE)`: 1 when the job will
# take a GPU (device cuda, or auto with a card visible), else 0, so that on a CPU-only machine they still run side by
# side on the cores. Snakemake runs at most `gpu` such jobs at once: the number of cards found (CUDA_VISIBLE_DEVICES,
# else nvidia-smi) unless `--resources gpu=N` (or a profile) says otherwise. Each job then claims one free card and
# sees only it (abdoseg.device.pick_device sets CUDA_VISIBLE_DEVICES). torch is not imported here.
from abdoseg import device as gpu_devices

if "gpu" not in workflow.global_resources:
    workflow.global_resources["gpu"] = gpu_devices.gpu_job_slots()


def gpus_for(device_name):
    """The `gpu` resource of a job whose device is `device_name` (params.yaml): 1 or 0."""
    return int(gpu_devices.uses_gpu(device_name))
