"""Build hook for the one compiled module: everything else is declared in pyproject.toml.

``rangeproof._p256msm`` is the verifier's P-256 multi-exponentiation for public scalars (a
bucket method in C, about three times fewer group operations than OpenSSL's per-point windows at
the model's size). It is optional: without a C compiler the build skips it and
``rangeproof.native_msm`` falls back to OpenSSL's ``EC_POINTs_mul`` through petlib.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rangeproof._p256msm",
            sources=["rangeproof/_p256msm.c"],
            extra_compile_args=["-O3", "-std=c11"],
            libraries=["crypto"],  # msm_small's additions call OpenSSL, as petlib does
            optional=True,
        )
    ]
)
