"""Per-image policies (AutoAugment, RandAugment, TrivialAugment, AugMix, PixMix, IPMix) and their ops."""
