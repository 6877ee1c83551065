"""Invariant 7: personal data and card-key secrets are ciphertext at rest, found by blind index,
shown masked."""

import base64
import hashlib
import hmac
import secrets

import peewee
import pytest
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from shop.crypto import (
    DecryptionError,
    EncryptedField,
    blind_index,
    configure,
    decrypt,
    encrypt,
    key_id,
    mask,
    mask_email,
    mask_phone,
    mask_secret,
    normalize_email,
    normalize_phone,
    reencrypt,
)
from shop.crypto import keyring as keyring_module

EMAIL = "user.email"


@pytest.fixture(autouse=True)
def master_key(monkeypatch):
    """A fresh random master key for each test; whatever keyring was active before comes back."""
    monkeypatch.setattr(keyring_module, "_active", None)
    key = secrets.token_bytes(32)
    configure(key)
    return key


def _raw(token: str) -> bytes:
    body = token.split(".")[2]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _with_raw(token: str, raw: bytes) -> str:
    prefix = token.rsplit(".", 1)[0]
    return prefix + "." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- encryption -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext", ["alice@example.com", "", "张三 13812345678 ✓ 🎮", "a" * 5000]
)
def test_round_trip(plaintext):
    token = encrypt(EMAIL, plaintext)
    assert token.isascii()
    assert plaintext not in token or plaintext == ""
    assert decrypt(EMAIL, token) == plaintext


def test_token_format_names_the_current_key(master_key):
    version, kid, body = encrypt(EMAIL, "x").split(".")
    assert version == "v1"
    assert kid == key_id(master_key)
    assert len(kid) == 8
    assert len(_raw(f"{version}.{kid}.{body}")) == 12 + 1 + 16  # nonce + ciphertext + tag


def test_same_value_encrypts_differently_each_time():
    tokens = {encrypt(EMAIL, "alice@example.com") for _ in range(20)}
    assert len(tokens) == 20
    assert len({_raw(t)[:12] for t in tokens}) == 20  # fresh nonce each time


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize("plaintext", ["alice@example.com", "alice@example.co", "alice@example.c"])
def test_any_edited_character_is_rejected(plaintext):
    """Every character, including the spare bits of a last base64 character (lengths vary)."""
    token = encrypt(EMAIL, plaintext)
    for i, ch in enumerate(token):
        for replacement in B64_ALPHABET + ".":
            if replacement != ch:
                with pytest.raises(DecryptionError):
                    decrypt(EMAIL, token[:i] + replacement + token[i + 1 :])


def test_any_flipped_byte_is_rejected():
    token = encrypt(EMAIL, "alice@example.com")
    raw = _raw(token)
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            edited = bytearray(raw)
            edited[i] ^= bit
            with pytest.raises(DecryptionError):
                decrypt(EMAIL, _with_raw(token, bytes(edited)))


def test_truncated_or_extended_tokens_are_rejected():
    token = encrypt(EMAIL, "alice@example.com")
    for end in range(len(token)):
        with pytest.raises(DecryptionError):
            decrypt(EMAIL, token[:end])
    raw = _raw(token)
    for bad in (raw[:-1], raw + b"\x00", raw[:28], raw[:27]):
        with pytest.raises(DecryptionError):
            decrypt(EMAIL, _with_raw(token, bad))
    for bad in (token + "A", token + "\n", " " + token, "plain text", ""):
        with pytest.raises(DecryptionError):
            decrypt(EMAIL, bad)


def test_decryption_error_is_a_value_error():
    assert issubclass(DecryptionError, ValueError)


def test_ciphertext_for_another_purpose_is_rejected():
    token = encrypt("user.email", "alice@example.com")
    for purpose in ("user.phone", "cardkey.secret", "user.emai", "user.email "):
        with pytest.raises(DecryptionError):
            decrypt(purpose, token)


def test_unknown_key_is_rejected():
    token = encrypt(EMAIL, "alice@example.com")
    configure(secrets.token_bytes(32))
    with pytest.raises(DecryptionError, match="unknown master key"):
        decrypt(EMAIL, token)


def test_token_relabelled_with_another_known_key_id_is_rejected(master_key):
    other = secrets.token_bytes(32)
    configure(master_key, old_master_keys=[other])
    token = encrypt(EMAIL, "alice@example.com")
    relabelled = token.replace(key_id(master_key), key_id(other))
    with pytest.raises(DecryptionError):
        decrypt(EMAIL, relabelled)


def test_rotation_keeps_old_tokens_readable_and_moves_them(master_key):
    old_token = encrypt(EMAIL, "alice@example.com")
    new_key = secrets.token_bytes(32)
    configure(new_key, old_master_keys=[master_key])

    assert decrypt(EMAIL, old_token) == "alice@example.com"
    assert encrypt(EMAIL, "bob@example.com").split(".")[1] == key_id(new_key)

    moved = reencrypt(EMAIL, old_token)
    assert moved.split(".")[1] == key_id(new_key)
    assert decrypt(EMAIL, moved) == "alice@example.com"
    assert reencrypt(EMAIL, moved) == moved  # already current: nothing to rewrite

    configure(new_key)  # old key retired: moved tokens still open, unmoved ones do not
    assert decrypt(EMAIL, moved) == "alice@example.com"
    with pytest.raises(DecryptionError):
        decrypt(EMAIL, old_token)


def test_reencrypt_refuses_a_tampered_token():
    token = encrypt(EMAIL, "alice@example.com")
    edited = bytearray(_raw(token))
    edited[-1] ^= 1
    with pytest.raises(DecryptionError):
        reencrypt(EMAIL, _with_raw(token, bytes(edited)))


def test_format_matches_the_documented_construction():
    """Stored data depends on this exact construction; changing it would strand every row."""
    master = bytes(range(32))
    configure(master)
    kid = hmac.new(master, b"kashop key id", hashlib.sha256).hexdigest()[:8]
    enc_key = HKDF(master, 32, b"kashop", SHA256, context=b"enc:user.email")
    nonce = bytes(range(12))
    cipher = AES.new(enc_key, AES.MODE_GCM, nonce=nonce)
    cipher.update(f"v1.{kid}.user.email".encode())
    ciphertext, tag = cipher.encrypt_and_digest(b"alice@example.com")
    body = base64.urlsafe_b64encode(nonce + ciphertext + tag).rstrip(b"=").decode()
    assert decrypt("user.email", f"v1.{kid}.{body}") == "alice@example.com"

    # and the other way: what the shop seals opens with an independent GCM implementation
    raw = base64.urlsafe_b64decode(encrypt("user.email", "bob@example.com").split(".")[2] + "==")
    check = AES.new(enc_key, AES.MODE_GCM, nonce=raw[:12])
    check.update(f"v1.{kid}.user.email".encode())
    assert check.decrypt_and_verify(raw[12:-16], raw[-16:]) == b"bob@example.com"

    index_key = HKDF(master, 32, b"kashop", SHA256, context=b"bidx:user.email")
    expected = hmac.new(index_key, b"alice@example.com", hashlib.sha256).hexdigest()
    assert blind_index("user.email", " Alice@Example.COM", normalize_email) == expected
    assert index_key != enc_key


def test_key_id_is_a_stable_fingerprint():
    key = bytes(range(32))
    assert key_id(key) == key_id(bytes(range(32)))
    assert key_id(key) != key_id(bytes(range(1, 33)))
    assert len(key_id(key)) == 8
    int(key_id(key), 16)


def test_two_keys_with_one_id_are_refused(monkeypatch, master_key):
    """Silently keeping one of them would make the other's tokens unreadable after a rotation."""
    monkeypatch.setattr(keyring_module, "key_id", lambda key: "00000000")
    configure(master_key, old_master_keys=[master_key])  # listing the same key twice is harmless
    with pytest.raises(ValueError, match="share the id"):
        configure(master_key, old_master_keys=[secrets.token_bytes(32)])


def test_unconfigured_keyring_fails_loudly(monkeypatch):
    monkeypatch.setattr(keyring_module, "_active", None)
    for call in (
        lambda: encrypt(EMAIL, "x"),
        lambda: decrypt(EMAIL, "v1.00000000.AAAA"),
        lambda: reencrypt(EMAIL, "v1.00000000.AAAA"),
        lambda: blind_index(EMAIL, "x"),
    ):
        with pytest.raises(RuntimeError, match="not configured"):
            call()


def test_bad_keys_and_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        configure(b"short")
    with pytest.raises(TypeError):
        configure("0" * 64)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        configure(secrets.token_bytes(32), old_master_keys=[b"short"])
    with pytest.raises(ValueError, match="purpose"):
        encrypt("", "x")
    with pytest.raises(TypeError):
        encrypt(EMAIL, b"bytes")
    with pytest.raises(TypeError):
        encrypt(EMAIL, None)


# --- blind index ------------------------------------------------------------------------------


def test_blind_index_is_stable_and_normalised():
    expected = blind_index(EMAIL, "alice@example.com", normalize_email)
    assert len(expected) == 64
    assert int(expected, 16) >= 0
    for variant in (" Alice@Example.COM ", "ALICE@EXAMPLE.COM", "alice@example.com\n"):
        assert blind_index(EMAIL, variant, normalize_email) == expected
    assert blind_index(EMAIL, "alicia@example.com", normalize_email) != expected


def test_blind_index_phone_ignores_formatting():
    phone = "user.phone"
    expected = blind_index(phone, "13812345678", normalize_phone)
    for variant in (
        "138 1234 5678",
        "138-1234-5678",
        "(138) 1234-5678",
        " １３８１２３４５６７８ ",
    ):
        assert blind_index(phone, variant, normalize_phone) == expected
    assert blind_index(phone, "+86 138-1234-5678", normalize_phone) == blind_index(
        phone, "+8613812345678", normalize_phone
    )
    assert blind_index(phone, "+8613812345678", normalize_phone) != expected


def test_normalisers():
    assert normalize_email(" Alice@Example.COM ") == "alice@example.com"
    assert normalize_phone(" +86 (138) 1234-5678 ") == "+8613812345678"
    assert normalize_phone("138 1234 5678") == "13812345678"


def test_default_normaliser_only_strips():
    assert blind_index("order.contact", "  QQ12345 ") == blind_index("order.contact", "QQ12345")
    assert blind_index("order.contact", "QQ12345") != blind_index("order.contact", "qq12345")


def test_blind_index_differs_per_purpose_and_per_master_key(master_key):
    by_purpose = {
        p: blind_index(p, "alice@example.com") for p in ("user.email", "order.contact", "x")
    }
    assert len(set(by_purpose.values())) == 3

    configure(secrets.token_bytes(32), old_master_keys=[master_key])
    assert blind_index("user.email", "alice@example.com") != by_purpose["user.email"]

    configure(master_key)
    assert blind_index("user.email", "alice@example.com") == by_purpose["user.email"]


def test_blind_index_is_not_a_plain_hash():
    value = "alice@example.com"
    assert blind_index(EMAIL, value) != hashlib.sha256(value.encode()).hexdigest()


def test_blind_index_refuses_empty_values():
    for value in ("", "   "):
        with pytest.raises(ValueError, match="empty"):
            blind_index(EMAIL, value, normalize_email)


# --- masking ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86*******5678"),
        ("1234567", "*****67"),
        ("12345", "*****"),
        (None, ""),
        ("", ""),
    ],
)
def test_mask_phone(value, masked):
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("alice@example.com", "a***@example.com"),
        (" Bob.Smith@mail.example.cn ", "B***@mail.example.cn"),
        ("a@example.com", "***@example.com"),
        ("not-an-email", "no********il"),
        (None, ""),
        ("", ""),
    ],
)
def test_mask_email(value, masked):
    assert mask_email(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("ABCD-1234-EFGH-5678", "ABCD***********5678"),
        ("ABCDEFGH12345678", "ABCD********5678"),
        ("ABCDEFGH1234567", "***************"),
        ("1234", "****"),
        (None, ""),
        ("", ""),
    ],
)
def test_mask_secret(value, masked):
    assert mask_secret(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [("wechat_id_1", "we*******_1"), ("abcdefgh", "ab****gh"), ("abc", "***"), (None, "")],
)
def test_mask(value, masked):
    assert mask(value) == masked


# --- EncryptedField ---------------------------------------------------------------------------


@pytest.fixture
def customer_model(tmp_path):
    sqlite_file = peewee.SqliteDatabase(str(tmp_path / "crypto.sqlite3"))

    class Customer(peewee.Model):
        email = EncryptedField("user.email")
        email_bidx = peewee.CharField(max_length=64, index=True)
        phone = EncryptedField("user.phone", null=True)

        class Meta:
            database = sqlite_file
            table_name = "customer"

    sqlite_file.connect()
    sqlite_file.create_tables([Customer])
    yield Customer
    sqlite_file.close()


def _file_bytes(tmp_path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.is_file())


def test_encrypted_field_keeps_plaintext_out_of_the_file(customer_model, tmp_path):
    Customer = customer_model
    email = "alice.secret@example.com"
    Customer.create(email=email, email_bidx=blind_index(EMAIL, email, normalize_email), phone=None)
    stored = Customer._meta.database.execute_sql("SELECT email, phone FROM customer").fetchone()
    Customer._meta.database.close()

    raw = _file_bytes(tmp_path)
    assert stored[0].startswith("v1.")
    assert stored[0].encode() in raw  # the row really is in the file, as ciphertext
    assert stored[1] is None
    assert email.encode() not in raw
    assert b"alice.secret" not in raw

    Customer._meta.database.connect()
    found = Customer.get(
        Customer.email_bidx == blind_index(EMAIL, " Alice.Secret@Example.com", normalize_email)
    )
    assert found.email == email
    assert found.phone is None


def test_encrypted_field_round_trips_updates_and_unicode(customer_model):
    Customer = customer_model
    row = Customer.create(email="a@example.com", email_bidx="x", phone="138 1234 5678")
    row.email = "张三@例子.中国"
    row.save()
    again = Customer.get_by_id(row.id)
    assert again.email == "张三@例子.中国"
    assert again.phone == "138 1234 5678"


def test_ciphertext_moved_to_another_column_does_not_decrypt(customer_model):
    Customer = customer_model
    row = Customer.create(email="alice@example.com", email_bidx="x", phone="13812345678")
    Customer._meta.database.execute_sql("UPDATE customer SET phone = email")
    with pytest.raises(DecryptionError):
        Customer.get_by_id(row.id)


def test_encrypted_field_refuses_an_index():
    with pytest.raises(ValueError, match="indexed"):
        EncryptedField("user.email", unique=True)
    with pytest.raises(ValueError, match="purpose"):
        EncryptedField("")
