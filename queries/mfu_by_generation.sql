-- mfu_by_generation: MFU and time fractions per GPU generation over the whole run.
-- params: run_id (text)
SELECT
    scope_id                                              AS generation,
    max(gpus)                                             AS gpus,
    sum(flops) / nullif(sum(peak_flops), 0)               AS mfu,
    avg(compute)                                          AS compute,
    avg(straggler_wait)                                   AS straggler_wait,
    avg(comm_stall)                                       AS comm_stall,
    avg(allocated_idle)                                   AS allocated_idle,
    avg(unallocated)                                      AS unallocated,
    avg(down)                                             AS down
FROM kpi
WHERE run_id = $run_id AND scope = 'generation'
GROUP BY scope_id
ORDER BY gpus DESC;
