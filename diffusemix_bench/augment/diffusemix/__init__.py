"""DiffuseMix: the augmentation, its composition (Eq. 1-3), half masks and Figure 4."""
