"""Batch mixing methods (mixup family, saliency and optimisation mixes) and the helpers only they use."""
