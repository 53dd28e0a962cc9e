"""`ResultsStoreResource.url_of`: links from the UI to files in the results store, when it is served."""

import pytest

from ult_pipeline.resources.target import ResultsStoreResource


def test_a_file_under_the_store_has_a_url_when_the_store_is_served(tmp_path):
    store = ResultsStoreResource(base_dir=str(tmp_path), base_url="http://127.0.0.1:18390/")
    report = store.partition_dir("trend") / "trend_report.html"
    assert store.url_of(report) == "http://127.0.0.1:18390/trend/trend_report.html"
    # File names may carry characters a URL must escape.
    odd = store.partition_dir("trend") / "a b#1.html"
    assert store.url_of(odd).endswith("/trend/a%20b%231.html")


def test_no_url_without_a_served_store_and_none_for_a_file_outside_it(tmp_path):
    assert ResultsStoreResource(base_dir=str(tmp_path)).url_of(tmp_path / "x.html") is None
    store = ResultsStoreResource(base_dir=str(tmp_path / "store"), base_url="http://127.0.0.1:1")
    with pytest.raises(ValueError):
        store.url_of(tmp_path / "elsewhere.html")
