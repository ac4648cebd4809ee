"""What the settings page may change, and on what terms (the rules the config form handler applies).

``secret_binding``: every secret is bound to its purpose, where it is sent and
which variable holds it; moving it, or pointing a field at another variable,
needs the secret typed again. ``program_fields``: the fields that name a
program, interpreter or its arguments the daemon starts, or a file it reads
secrets from; the page shows them read-only and a post that carries one is
refused. Path: the config page's POST -> config_forms.apply_form ->
these checks -> ConfigEditor.save.
"""
