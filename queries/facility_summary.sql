-- facility_summary: the run at a glance: installed GPUs, MFU, power, energy and its cost.
-- MFU over the run = credited model FLOPs / (sum of peak FLOP/s x time), DESIGN.md definitions.
-- params: run_id (text)
SELECT
    any_value(scope_id)                                   AS facility,
    count(*)                                              AS ticks,
    (max(tick_end_ns) - min(tick_start_ns)) / 1e9         AS seconds,
    max(gpus)                                             AS gpus,
    sum(flops) / nullif(sum(peak_flops), 0)               AS mfu,
    sum(energy_j) / nullif(sum(tick_end_ns - tick_start_ns) / 1e9, 0) / 1e6 AS mean_power_mw,
    sum(energy_j) / 3.6e9                                 AS energy_mwh,
    sum(energy_usd)                                       AS energy_usd,
    sum(recoverable_j) / 3.6e9                            AS recoverable_mwh,
    sum(useful_pflop_h)                                   AS useful_pflop_h
FROM kpi
WHERE run_id = $run_id AND scope = 'facility';
