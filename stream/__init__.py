"""Kafka edge: consumer, producer, dead-letter queue and the checkpoint protocol.

Nothing outside this package imports kafka-python.
"""
