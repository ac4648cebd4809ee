"""The GPU box in one command: ``secretary gpu setup`` and ``secretary gpu models``.

What passes through here is the owner's turning of a CPU box into the GPU
secretary: a preflight of the NVIDIA driver through NVML, the engines' own
venvs (vLLM, XTTS) pinned by the repository's constraint files, the models
fetched and verified against the repository's lock file (``models/``), a
profile that writes the engine chains and fits the GPU's memory (the VRAM
budget, also shown by ``secretary doctor``), and the units started and proven::

    secretary gpu setup -> preflight -> engine venvs -> models (hub or --from DIR) -> profile + VRAM budget
        -> secretary-vllm.service, secretaryd restarted -> engines/*/state ready -> the greeting's first audio
"""
