"""SIM7600 driver tests."""
