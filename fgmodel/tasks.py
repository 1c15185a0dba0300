"""Task names and head sizes, shared by the config (validation) and the data loaders."""

NUM_CLASSES: dict[str, int] = {"cub": 200, "cub_aircraft": 300, "foodx": 251, "demo": 20}

# The demo task runs on a laptop CPU: switching a paper config to it also switches to
# these (tiny backbone, small images, no download), and the CLIs say so when they do.
DEMO_PROFILE: dict[str, object] = {
    "model.backbone": "convnextv2_atto",
    "model.pretrained": "none",
    "data.image_size": 64,
    "optim.batch_size": 32,
    "optim.lr": 1e-3,
}
