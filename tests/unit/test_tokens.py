from core.mail import tokens

SECRET = "s3cret"


def test_our_message_id_names_its_ticket_and_a_forgery_does_not():
    mid = tokens.make_message_id(SECRET, 42, "example.test")
    assert tokens.ticket_of_message_id(SECRET, mid) == 42
    forged = mid.replace("pd.42.", "pd.43.")
    assert tokens.ticket_of_message_id(SECRET, forged) is None
    assert tokens.ticket_of_message_id("other-secret", mid) is None
    assert tokens.ticket_of_message_id(SECRET, "random@example.org") is None


def test_message_ids_are_unique():
    assert len({tokens.make_message_id(SECRET, 1, "d") for _ in range(100)}) == 100


def test_reply_address_is_bound_to_ticket_and_recipient():
    addr = tokens.sign_reply_address(SECRET, "support@example.test", 7, "Ann@Example.org")
    assert addr.startswith("support+7.") and addr.endswith("@example.test")
    assert tokens.verify_reply_address(SECRET, addr, "ann@example.org") == 7
    assert tokens.verify_reply_address(SECRET, addr, "mallory@example.org") is None
    assert tokens.verify_reply_address(SECRET, addr.replace("+7.", "+8."), "ann@example.org") is None
    assert tokens.verify_reply_address(SECRET, "support@example.test", "ann@example.org") is None


def test_link_tokens_carry_at_least_128_bits_and_are_stored_hashed():
    token, digest = tokens.new_link_token()
    assert len(token) >= 22 and digest == tokens.hash_link_token(token) and token not in digest
