"""Install the ``dispatch`` package: knowledge distillation recipes for speech enhancement on ESPnet."""
from setuptools import find_packages, setup

setup(
    name="dispatch",
    version="0.1.0",
    description="ESPnet-style recipes for knowledge distillation of speech-enhancement models "
    "(DISPatch, MSSP, DFKD, output KD, AT-KL)",
    packages=find_packages(include=["dispatch", "dispatch.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch==2.11.0",
        "torchaudio==2.11.0",
        "espnet==202511",
        "numpy<2.4",
        "tensorboard",
        "kaldiio",
        "sentencepiece",
        "soundfile",
        "pesq",
        "pystoi",
        "mir_eval",
    ],
    entry_points={
        "console_scripts": [
            "dispatch-train=dispatch.bin.enh_distill_train:main",
            "dispatch-export=dispatch.bin.export_student:main",
            "dispatch-enhance=dispatch.bin.enhance:main",
        ]
    },
)
