"""Training and evaluation of the PMR anonymizer (installed as ``pmr_training``; its ``pmr``
commands plug in through :mod:`.commands`)."""
