"""Kafka through FastStream: the broker, topics, and at-least-once delivery with dead letters."""
