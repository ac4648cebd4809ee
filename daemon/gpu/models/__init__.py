"""The GPU models: pinned in the repository's lock file, fetched from the Hub or a USB stick, verified, exported.

Every file named by the lock file is fetched at its pinned revision (the
Hub through ``huggingface_hub``, ``HF_ENDPOINT`` honoured, or a directory
with ``--from``), checked against its sha256 and size, and only then moved
into ``engines.models_dir``; nothing half-fetched is ever used::

    lock file -> disk space check -> fetch (resumable) -> verify -> atomic move into models_dir
    models_dir -> verify -> export to a stick (secretary gpu models --export DIR)
"""
