-- job_mfu_ranking: jobs ranked by MFU over the ticks they ran (kpi scope 'job': credited model
-- FLOPs / peak FLOPs of the job's GPUs), with their time fractions (GPU-time weighted), useful
-- PFLOP-hours, energy and its cost, energy dollars per useful PFLOP-hour, the GPU-seconds
-- others waited for them, and the most campuses their GPUs spanned at any GPU snapshot
-- (NULL when no snapshot saw the job).
-- params: run_id (text), top (integer, default 50)
WITH span AS (
    SELECT job_id, max(n) AS campuses
    FROM (SELECT snapshot_id, job_id, count(DISTINCT campus_id) AS n
          FROM gpu_snapshot
          WHERE run_id = $run_id AND job_id IS NOT NULL
          GROUP BY snapshot_id, job_id)
    GROUP BY job_id
),
j AS (
    SELECT
        scope_id                                              AS job_id,
        count(*)                                              AS ticks,
        max(gpus)                                             AS gpus,
        sum(flops) / nullif(sum(peak_flops), 0)               AS mfu,
        sum(compute * gpus) / nullif(sum(gpus), 0)            AS compute,
        sum(straggler_wait * gpus) / nullif(sum(gpus), 0)     AS straggler_wait,
        sum(comm_stall * gpus) / nullif(sum(gpus), 0)         AS comm_stall,
        sum(allocated_idle * gpus) / nullif(sum(gpus), 0)     AS allocated_idle,
        sum(useful_pflop_h)                                   AS useful_pflop_h,
        sum(energy_j) / 3.6e9                                 AS energy_mwh,
        sum(energy_usd)                                       AS energy_usd,
        sum(energy_usd) / nullif(sum(useful_pflop_h), 0)      AS energy_usd_per_useful_pflop_h,
        sum(straggler_cost_gpu_s)                             AS straggler_cost_gpu_s
    FROM kpi
    WHERE run_id = $run_id AND scope = 'job'
    GROUP BY scope_id
)
SELECT rank() OVER (ORDER BY j.mfu DESC NULLS LAST) AS rank, j.*, span.campuses
FROM j LEFT JOIN span USING (job_id)
ORDER BY j.mfu DESC NULLS LAST, j.job_id
LIMIT $top;
