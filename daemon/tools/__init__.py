"""The owner's programs built on the whole box: ``secretary demo``, ``secretary doctor``, a private broker.

``demo.py`` runs the box (``daemon/app.py``) with the simulator and a
private mosquitto (``private_broker.py``) and places one call with the bundled
caller recordings (``demo_caller/``); ``doctor.py`` checks what a box needs
and says what is wrong::

    secretary demo -> MosquittoBroker + SecretaryApp(simulator) -> simulator/call -> the caller's lines -> transcript
"""
