-- tenant_economics: per tenant (lease owner; GPUs under no lease belong to "unleased"), what
-- its leases earned, what its GPUs' energy cost, the useful PFLOP-hours delivered, the dollars
-- per useful PFLOP-hour (revenue, and energy alone) and the margin over energy. GPU-hours are
-- the tenant's mean GPUs x tick length, summed over ticks.
-- params: run_id (text)
SELECT
    scope_id                                              AS tenant_id,
    max(gpus)                                             AS gpus,
    sum(gpus * (tick_end_ns - tick_start_ns) / 1e9) / 3600 AS gpu_hours,
    sum(flops) / nullif(sum(peak_flops), 0)               AS mfu,
    sum(revenue_usd)                                      AS revenue_usd,
    sum(energy_j) / 3.6e9                                 AS energy_mwh,
    sum(energy_usd)                                       AS energy_usd,
    sum(revenue_usd) - sum(energy_usd)                    AS margin_over_energy_usd,
    sum(useful_pflop_h)                                   AS useful_pflop_h,
    sum(revenue_usd) / nullif(sum(useful_pflop_h), 0)     AS usd_per_useful_pflop_h,
    sum(energy_usd) / nullif(sum(useful_pflop_h), 0)      AS energy_usd_per_useful_pflop_h
FROM kpi
WHERE run_id = $run_id AND scope = 'tenant'
GROUP BY scope_id
ORDER BY gpus DESC, tenant_id;
