"""Generated conversations for threading tests: customers who write several requests, replies to
the original or to an earlier reply, from clients that write full References, only In-Reply-To,
or a truncated References. Each mail knows its conversation, so a test can check where it landed."""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ConversationMail:
    raw: bytes
    message_id: str
    conversation: int
    is_reply: bool


def generate(conversations: int, replies: int, seed: int, customers: int = 300) -> list[ConversationMail]:
    """Mails in sending order (a reply always after what it answers)."""
    rng = random.Random(seed)
    people = [f"customer{n}@{rng.choice(['example.org', 'example.com', 'mail.example.net'])}"
              for n in range(customers)]
    mails: list[ConversationMail] = []
    threads: list[list[str]] = []  # per conversation: its Message-IDs, oldest first
    chains: list[dict[str, list[str]]] = []  # per conversation: each mail's References chain
    owners: list[str] = []
    pending_replies = replies
    for n in range(conversations + replies):
        remaining = conversations + replies - n
        start_new = not threads or (len(threads) < conversations and rng.random() < (
            (conversations - len(threads)) / remaining))
        if start_new or pending_replies == 0:
            conv = len(threads)
            owner = rng.choice(people)
            msgid = f"c{conv}.root.{seed}.{rng.getrandbits(32):x}@{owner.rpartition('@')[2]}"
            threads.append([msgid]), chains.append({msgid: []}), owners.append(owner)
            mails.append(ConversationMail(_raw(owner, f"Request {conv}: problem {rng.randint(1, 10**6)}", msgid, "",
                                               f"Hello, this is about problem number {conv}."), msgid, conv, False))
            continue
        conv = rng.randrange(len(threads))
        parent = rng.choice(threads[conv])
        chain = chains[conv][parent] + [parent]
        msgid = f"c{conv}.r{len(threads[conv])}.{seed}.{rng.getrandbits(32):x}@{owners[conv].rpartition('@')[2]}"
        style = rng.random()
        if style < 0.7:
            headers = f"In-Reply-To: <{parent}>\r\nReferences: {' '.join(f'<{m}>' for m in chain)}\r\n"
        elif style < 0.9:
            headers = f"In-Reply-To: <{parent}>\r\n"
        else:
            headers = f"References: {' '.join(f'<{m}>' for m in chain[-2:])}\r\n"
        threads[conv].append(msgid)
        chains[conv][msgid] = chain
        pending_replies -= 1
        mails.append(ConversationMail(_raw(owners[conv], f"Re: Request {conv}", msgid, headers,
                                           f"More about {conv}: reply {len(threads[conv])}."), msgid, conv, True))
    return mails


def _raw(sender: str, subject: str, msgid: str, headers: str, body: str) -> bytes:
    return (f"From: {sender}\r\nTo: support@example.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n"
            f"{headers}Date: Mon, 3 Jun 2024 08:00:00 +0000\r\n\r\n{body}\r\n").encode()
