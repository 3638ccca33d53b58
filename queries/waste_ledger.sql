-- waste_ledger: where the facility's energy went, by cause, in MWh and dollars (energy ledger of
-- DESIGN.md: useful + kernel_inefficiency + straggler_wait + comm_stall + allocated_idle +
-- unallocated + down + overhead = facility energy).
-- params: run_id (text)
SELECT
    cause,
    sum(energy_j) / 3.6e9                                      AS mwh,
    sum(cost_usd)                                              AS usd,
    sum(energy_j) / nullif(sum(sum(energy_j)) OVER (), 0)      AS share
FROM ledger
WHERE run_id = $run_id
GROUP BY cause
ORDER BY mwh DESC;
