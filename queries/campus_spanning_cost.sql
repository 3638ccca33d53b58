-- campus_spanning_cost: what spanning campuses costs. Method: a job "spans campuses" when, at
-- any GPU snapshot of the run, its GPUs (gpu_snapshot.job_id) sat on more than one campus_id;
-- "single campus" when every snapshot that saw it found one campus; "unknown" when no snapshot
-- saw it. The job's KPI rows (kpi scope 'job') are summed per group: MFU, time fractions
-- (GPU-time weighted), comm-stall energy, energy and its cost. excess_mwh / excess_usd is what
-- the spanning jobs spent beyond what their useful work needs at the single-campus jobs' MFU
-- (energy x max(0, 1 - MFU / MFU_single), as recoverable_energy does for 40%); NULL unless both
-- groups ran. The groups differ in more than placement (generation mix, size): for a
-- controlled answer compare two runs (`twin compare colossus1-mixed colossus1-homogeneous`).
-- params: run_id (text)
WITH span AS (
    SELECT job_id, max(n) AS campuses
    FROM (SELECT snapshot_id, job_id, count(DISTINCT campus_id) AS n
          FROM gpu_snapshot
          WHERE run_id = $run_id AND job_id IS NOT NULL
          GROUP BY snapshot_id, job_id)
    GROUP BY job_id
),
k AS (
    SELECT k.*,
           CASE WHEN s.campuses IS NULL THEN 'unknown'
                WHEN s.campuses > 1 THEN 'spans campuses'
                ELSE 'single campus' END AS placement,
           k.gpus * (k.tick_end_ns - k.tick_start_ns) / 1e9 AS gpu_s
    FROM kpi k LEFT JOIN span s ON s.job_id = k.scope_id
    WHERE k.run_id = $run_id AND k.scope = 'job'
),
g AS (
    SELECT
        placement,
        count(DISTINCT scope_id)                              AS jobs,
        sum(gpu_s) / 3600                                     AS gpu_hours,
        sum(flops) / nullif(sum(peak_flops), 0)               AS mfu,
        sum(compute * gpu_s) / nullif(sum(gpu_s), 0)          AS compute,
        sum(straggler_wait * gpu_s) / nullif(sum(gpu_s), 0)   AS straggler_wait,
        sum(comm_stall * gpu_s) / nullif(sum(gpu_s), 0)       AS comm_stall,
        sum(comm_stall_j) / 3.6e9                             AS comm_stall_mwh,
        sum(energy_j) / 3.6e9                                 AS energy_mwh,
        sum(energy_usd)                                       AS energy_usd,
        sum(useful_pflop_h)                                   AS useful_pflop_h,
        sum(energy_usd) / nullif(sum(useful_pflop_h), 0)      AS energy_usd_per_useful_pflop_h
    FROM k
    GROUP BY placement
),
single AS (SELECT max(mfu) AS mfu FROM g WHERE placement = 'single campus')
SELECT g.*,
       CASE WHEN g.placement = 'spans campuses' AND single.mfu > 0
            THEN g.energy_mwh * greatest(0, 1 - g.mfu / single.mfu) END AS excess_mwh,
       CASE WHEN g.placement = 'spans campuses' AND single.mfu > 0
            THEN g.energy_usd * greatest(0, 1 - g.mfu / single.mfu) END AS excess_usd
FROM g CROSS JOIN single
ORDER BY list_position(['single campus', 'spans campuses', 'unknown'], g.placement);
