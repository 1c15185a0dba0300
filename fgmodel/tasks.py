"""Task names and head sizes, shared by the config (validation) and the data loaders."""

NUM_CLASSES: dict[str, int] = {"cub": 200, "cub_aircraft": 300, "foodx": 251, "demo": 20}

# The demo task runs on a laptop CPU: switching a paper config to it also switches to
# these (tiny backbone, small images, no download), and the CLIs say so when they do.
DEMO_PROFILE: dict[str, object] = {
    "model.backbone": "convnextv2_atto",
    "model.pretrained": "none",
    "data.image_size": 48,  # atto from scratch reaches ~44% top-1 (chance 5%) in 5 epochs
    "optim.batch_size": 32,
    "optim.lr": 5e-4,  # 1e-3 stays at chance from scratch; 5e-4 leaves chance by epoch 2
}
