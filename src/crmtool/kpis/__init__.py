"""KPIs over the run history: ``kpis.yaml`` -> series, targets, anomaly checks, renderers."""

from crmtool.kpis.evaluate import KpiReport, KpiResult, evaluate_kpis, parse_since, run_kpis
from crmtool.kpis.render import sparkline, to_csv, to_json, to_text
from crmtool.kpis.spec import KpiFile, KpiSpec, kpis_schema, load_kpis

__all__ = ["KpiFile", "KpiReport", "KpiResult", "KpiSpec", "evaluate_kpis", "kpis_schema", "load_kpis",
           "parse_since", "run_kpis", "sparkline", "to_csv", "to_json", "to_text"]
