"""The Redis broker transport, with kombu 5.7's crash on a broker outage fixed.

``CELERY_BROKER_TRANSPORT = "portal.broker:RedisTransport"`` (portal/settings.py) selects it for
``redis://`` broker URLs; docs/decisions.md ("Broker outages") tells the whole story.

The defect (kombu 5.7.0, ``kombu/transport/redis.py`` with ``kombu/connection.py``): when the
broker goes away under a worker, Celery's consumer recovers with ``Connection.collect()`` and then
``Connection.close()`` (``celery/worker/consumer/consumer.py``,
``on_connection_error_after_connected``).

1. ``collect()`` closes the consuming channel. ``Channel.close()`` first reads the answer of the
   BRPOP it has in flight (``_brpop_read``); the broker is gone, so that raises ``ConnectionError``
   before the channel is marked closed. The error is swallowed as a connection error, and
   ``collect()`` then detaches the transport from the connection (``transport.client = None``).
2. ``close()`` closes the same channel again. This time there is no BRPOP in flight, so the close
   goes on: it drops the channel's connection pools and restores the unacknowledged messages
   (``QoS.restore_unacked_once``). Restoring needs a Redis client, the pool is gone, and a new one
   is built from ``self.connection.client``, now ``None``:
   ``AttributeError: 'NoneType' object has no attribute 'hostname'``. That is not a connection
   error, so Celery treats it as unrecoverable and the worker exits.

Only a channel that holds unacknowledged messages restores anything, which is why it needs
``acks_late`` or ``countdown``/ETA tasks (held unacknowledged until due): a portal worker always has
them. A late acknowledgement of a task that was running during the outage goes the same way.

The fix: a channel remembers the connection parameters it was opened with and uses them once its
transport has been detached, so restoring and acknowledging work as on any other channel (they
fail with a ``ConnectionError``, which kombu and Celery handle, while the broker is still down; the
messages then stay in Redis's ``unacked`` hash and come back after ``visibility_timeout``, and the
outbox sweeper re-sends their rows long before). A channel that never connected and has no
transport raises ``ConnectionError`` instead of ``AttributeError``.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class RedisChannel(kombu_redis.Channel):
    _kept_connparams: dict | None = None

    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection is None or self.connection.client is None:
            # Detached by Connection.collect()/close(): reconnect with what this channel used.
            kept = (self._kept_connparams or {}).get(asynchronous)
            if kept is None:
                raise RedisConnectionError("the broker connection was closed")
            return dict(kept)
        params = super()._connparams(asynchronous=asynchronous)
        if self._kept_connparams is None:
            self._kept_connparams = {}
        self._kept_connparams[asynchronous] = dict(params)
        return params

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.closed:
                # Restoring unacknowledged messages may have opened a pool after the close: drop it.
                self._disconnect_pools()


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel
