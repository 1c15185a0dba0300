"""fgmodel: a timm ConvNeXt-V2 with SCRA, dropout, L2SP and exact FLOPs accounting (no Ray, no Optuna)."""
