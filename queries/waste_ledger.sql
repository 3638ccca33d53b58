-- waste_ledger: where the facility's energy went over the whole run, by cause, in MWh and
-- dollars, and the same as rates per day of event time (energy ledger of DESIGN.md: useful +
-- kernel_inefficiency + straggler_wait + comm_stall + allocated_idle + unallocated + down +
-- overhead = facility energy; the rows sum to the facility's energy_j in kpi).
-- params: run_id (text)
SELECT
    cause,
    sum(energy_j) / 3.6e9                                      AS mwh,
    sum(cost_usd)                                              AS usd,
    sum(energy_j) / nullif(sum(sum(energy_j)) OVER (), 0)      AS share,
    sum(energy_j) / 3.6e9 * 86400 / nullif(sum(dt_s), 0)       AS mwh_per_day,
    sum(cost_usd) * 86400 / nullif(sum(dt_s), 0)               AS usd_per_day
FROM ledger
WHERE run_id = $run_id
GROUP BY cause
ORDER BY mwh DESC, cause;
