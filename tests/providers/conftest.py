import pytest

from tests.providers.simulator_process import SimulatorProcess


@pytest.fixture(scope="session")
def _simulator_process():
    # One process for the whole session (starting Django costs ~1 s); `simulator` resets it per test.
    with SimulatorProcess(
        secret="test-secret", key_id="test", fail_rate=0, hang_seconds=1, slow_seconds=0.3
    ) as sim:
        yield sim


@pytest.fixture
def simulator(_simulator_process):
    """A running provider simulator (secret "test-secret", key id "test", no faults, a 'timeout'
    fault hangs 1 s, a 'slow' one 0.3 s), empty and with fresh counters for each test."""
    sim = _simulator_process
    if not sim.running:  # a test stopped it
        sim.start()
    sim.reset()
    return sim
