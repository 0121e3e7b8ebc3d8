"""Who really sent a mail: DKIM, SPF and DMARC, verified at our SMTP door or read from the
Authentication-Results of an MTA we trust. Intake keeps the verdict on every message and the
trust rules in core/routing.py read it."""
from core.sender_auth.results import verdict_from_results
from core.sender_auth.verdict import AuthVerdict, NO_VERDICT
from core.sender_auth.verify import SenderAuthenticator

__all__ = ["AuthVerdict", "NO_VERDICT", "SenderAuthenticator", "verdict_from_results"]
