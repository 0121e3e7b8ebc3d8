"""Rule tables for the offline triage: plain data, so they can later come from configuration.

Keywords are lowercase words or phrases. The matcher in `core.ai.offline` accepts them as whole
words with a few common endings (s, es, ed, d, ing, en, n), so "invoice" also finds "invoices"
and "crash" finds "crashed", while "fire" does not find "firewall".
"""
from __future__ import annotations

from typing import Final

# Order matters on a tie: the earlier category wins.
CATEGORY_KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    "billing": (
        "invoice", "refund", "charge", "payment", "pay", "paid", "billing", "bill", "receipt",
        "subscription", "price", "pricing", "credit card", "overcharge", "vat",
        # de / fr / es
        "rechnung", "zahlung", "rückerstattung", "abbuchung", "bezahlt", "gutschrift",
        "facture", "paiement", "remboursement", "prélèvement",
        "factura", "pago", "reembolso", "cobro",
    ),
    "account": (
        "password", "login", "log in", "logon", "sign in", "signin", "account", "locked",
        "locked out", "2fa", "two-factor", "mfa", "username", "password reset", "sso",
        "verification code",
        "passwort", "kennwort", "konto", "anmelden", "anmeldung", "gesperrt", "benutzername",
        "mot de passe", "compte", "connexion", "identifiant", "bloqué",
        "contraseña", "cuenta", "iniciar sesión", "usuario", "bloqueado",
    ),
    "technical": (
        "error", "crash", "bug", "printer", "server", "install", "installation", "broken",
        "not working", "doesn't work", "does not work", "fail", "failure", "exception",
        "timeout", "network", "wifi", "vpn", "update", "upgrade", "outage", "database",
        "laptop", "slow", "freeze", "reboot", "disk", "backup", "outlook",
        "fehler", "drucker", "absturz", "funktioniert nicht", "netzwerk", "störung",
        "erreur", "imprimante", "panne", "ne fonctionne pas", "réseau", "serveur",
        "impresora", "fallo", "no funciona", "servidor",
    ),
}
CATEGORY_ORDER: Final[tuple[str, ...]] = ("billing", "account", "technical")
DEFAULT_CATEGORY: Final = "general"

# Phrases that lower urgency; they are removed before the urgency words are looked for,
# so "not urgent" never counts as "urgent".
LOW_PRIORITY_PHRASES: Final[tuple[str, ...]] = (
    "when you have time", "when you get a chance", "no rush", "not urgent", "no hurry",
    "low priority", "just wondering", "quick question", "question", "feature request",
    "suggestion", "nicht dringend", "keine eile", "frage", "pas urgent", "question rapide",
    "no es urgente", "sin prisa", "pregunta",
)
CRITICAL_PRIORITY_TERMS: Final[tuple[str, ...]] = (
    "fire", "smoke", "breach", "security breach", "data loss", "lost all data", "ransomware",
    "hacked", "outage", "production down", "all users affected", "nobody can work",
    "rauch", "niemand kann arbeiten", "datenverlust", "incendie", "fumée", "perte de données",
    "incendio", "humo", "pérdida de datos",
)
HIGH_PRIORITY_TERMS: Final[tuple[str, ...]] = (
    "urgent", "urgently", "asap", "as soon as possible", "immediately", "emergency",
    "critical", "is down", "are down", "went down", "server down", "site down", "system down",
    "network down", "security", "cannot work", "can't work", "blocked", "deadline",
    "dringend", "sofort", "notfall", "eilig",
    "urgence", "immédiatement", "critique",
    "urgente", "inmediatamente", "emergencia",
)
# Three different urgency terms ("urgent, asap, cannot work") make a mail critical.
HIGH_TERMS_FOR_CRITICAL: Final = 3
DEFAULT_PRIORITY: Final = "medium"

SKILL_KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    "billing": ("invoice", "refund", "charge", "payment", "billing", "subscription", "rechnung",
                "zahlung", "facture", "paiement", "factura", "pago", "reembolso"),
    "accounts": ("password", "login", "log in", "sign in", "2fa", "two-factor", "mfa", "sso",
                 "locked out", "username", "passwort", "mot de passe", "contraseña"),
    "printers": ("printer", "print", "toner", "paper jam", "scanner", "drucker",
                 "imprimante", "impresora"),
    "networking": ("network", "wifi", "wi-fi", "vpn", "router", "dns", "firewall", "ethernet",
                   "proxy", "netzwerk", "réseau", "red wifi"),
    "email": ("email", "e-mail", "outlook", "mailbox", "smtp", "imap", "spam", "inbox"),
    "servers": ("server", "outage", "database", "backup", "hosting", "downtime", "servidor",
                "serveur"),
    "security": ("breach", "phishing", "malware", "virus", "hacked", "ransomware", "security",
                 "suspicious"),
    "hardware": ("laptop", "monitor", "keyboard", "mouse", "disk", "battery", "screen",
                 "docking station"),
    "software": ("install", "installation", "update", "upgrade", "license", "licence", "crash",
                 "app", "application"),
}
MAX_SKILLS: Final = 8

STOP_WORDS: Final[frozenset[str]] = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can cannot could did do does doing during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not now of off on once only or other our ours
out over own same she should so some such than that the their theirs them then there these
they this those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself also get got please thanks thank hi
hello dear regards best kind sent re fwd fw would could us let know like one two need
der die das und ist nicht ein eine einen mit von zu den dem des auf für ich sie wir es bitte
danke hallo grüße mfg le la les et est pas un une des du de pour avec je nous vous il elle
merci bonjour cordialement el los las y es no una unos por con yo nosotros usted gracias hola
saludos que en
""".split())
