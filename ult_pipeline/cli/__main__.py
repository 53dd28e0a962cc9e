from ult_pipeline.cli.main import cli

cli()
