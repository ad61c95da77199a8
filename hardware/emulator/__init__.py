"""A software TLC1 card (spec/CARD.md) and its link to a PC/SC reader through vsmartcard's vpcd."""
