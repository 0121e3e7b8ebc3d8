"""Defences that span doors: trusted devices for sign-in, inert links in AI output."""
