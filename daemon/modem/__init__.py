"""The SIM7600 modem as a supervised service: the driver's events on the bus, bus commands to the driver.

``modem_service.py`` opens the driver (``drivers/sim7600``) or the simulator,
answers an incoming call after the configured rings unless the number is
blocked (``blocked_numbers.py``), publishes ``modem/state`` and relays the
driver's events to the call service; ``modem_manager_inhibit.py`` keeps
ModemManager off the device while the box owns it::

    drivers/sim7600 events -> ModemService -> EventHub -> call/ (answered, DTMF, ended) and modem/state
    cmd/dial, cmd/hangup, cmd/sms/send -> ModemService -> driver
"""
