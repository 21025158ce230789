import os
import stat
import sys

import pytest

from hedge_agent.cloud.token_store import MAX_SECRET_BYTES, TokenStore, secret_size

from .keyring_memory import MemoryKeyring

SHORT = "eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIiwiYWxnIjoiUlNBLU9BRVAifQ." + "a" * 200
# a realistic Cognito refresh token is ~1,800 characters: 3,600 bytes as UTF-16, over Windows' 2,560
LONG = "eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIiwiYWxnIjoiUlNBLU9BRVAifQ." + "b" * 1800


@pytest.fixture
def backend():
    return MemoryKeyring()


@pytest.fixture
def store(backend, tmp_path):
    return TokenStore(backend, tmp_path)


def test_a_short_token_round_trips_through_the_credential_store_alone(store, backend, tmp_path):
    assert secret_size(SHORT) < MAX_SECRET_BYTES
    store.save("pool/alice", SHORT)
    assert store.load("pool/alice") == SHORT
    assert not store.file_for("pool/alice").exists()
    assert SHORT in next(iter(backend.entries.values()))


def test_a_token_too_big_for_windows_goes_encrypted_to_a_private_file_with_its_key_in_the_store(
    store, backend
):
    assert secret_size(LONG) > MAX_SECRET_BYTES
    store.save("pool/alice", LONG)
    path = store.file_for("pool/alice")
    assert path.exists()
    assert LONG.encode() not in path.read_bytes()
    stored = backend.entries[("hedge-agent", "pool/alice")]
    assert stored.startswith("fernet:") and secret_size(stored) <= MAX_SECRET_BYTES
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.load("pool/alice") == LONG


def test_logout_removes_both_the_credential_entry_and_the_file(store, backend):
    store.save("pool/alice", LONG)
    assert store.delete("pool/alice") is True
    assert backend.entries == {}
    assert not store.file_for("pool/alice").exists()
    assert store.load("pool/alice") is None
    assert store.delete("pool/alice") is False


def test_saving_a_short_token_after_a_long_one_removes_the_stale_file(store):
    store.save("pool/alice", LONG)
    store.save("pool/alice", SHORT)
    assert not store.file_for("pool/alice").exists()
    assert store.load("pool/alice") == SHORT


def test_a_missing_or_tampered_file_reads_as_no_sign_in(store):
    store.save("pool/alice", LONG)
    path = store.file_for("pool/alice")
    path.write_bytes(b"garbage")
    assert store.load("pool/alice") is None
    path.unlink()
    assert store.load("pool/alice") is None


def test_two_users_do_not_share_an_entry(store):
    store.save("pool/alice", LONG)
    store.save("pool/bob", SHORT)
    assert store.load("pool/alice") == LONG
    assert store.load("pool/bob") == SHORT


def test_an_unavailable_credential_store_is_a_clear_error(tmp_path):
    from keyring.backends.fail import Keyring as FailKeyring

    from hedge_agent.cloud.token_store import CredentialStoreError

    with pytest.raises(CredentialStoreError, match="credential store") as info:
        TokenStore(FailKeyring(), tmp_path).save("pool/alice", SHORT)
    assert SHORT not in str(info.value)
