-- tenant_economics: per tenant (lease owner), what the lease earned, what its energy cost, the
-- useful PFLOP-hours delivered and the dollars per useful PFLOP-hour.
-- params: run_id (text)
SELECT
    scope_id                                              AS tenant_id,
    max(gpus)                                             AS gpus,
    sum(flops) / nullif(sum(peak_flops), 0)               AS mfu,
    sum(revenue_usd)                                      AS revenue_usd,
    sum(energy_usd)                                       AS energy_usd,
    sum(useful_pflop_h)                                   AS useful_pflop_h,
    sum(revenue_usd) / nullif(sum(useful_pflop_h), 0)     AS usd_per_useful_pflop_h,
    sum(energy_usd) / nullif(sum(useful_pflop_h), 0)      AS energy_usd_per_useful_pflop_h
FROM kpi
WHERE run_id = $run_id AND scope = 'tenant'
GROUP BY scope_id
ORDER BY gpus DESC;
