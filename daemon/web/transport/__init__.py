"""How the web page meets the network: TLS, the names it answers to, who a client is, how much it may send.

``certificate.py`` makes the box's self-signed certificate, checks one the
owner uploads and builds the server's TLS context; ``host_check.py`` refuses
requests for names that are not the box's (DNS rebinding); ``client_address.py``
says which client a request comes from (an IPv6 /64, or the address a trusted
proxy names) so login throttling counts per client, with a global cap;
``limits.py`` keeps bodies small and headers honest::

    socket -> TLS (certificate) -> host_check -> limits -> web_app's middlewares -> pages
                                   client_address -> the login throttle
"""
