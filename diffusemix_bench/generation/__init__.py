"""DiffuseMix step 1: InstructPix2Pix edits of every training image, kept in a resumable edit store."""
