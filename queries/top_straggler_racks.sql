-- top_straggler_racks: the racks whose GPUs set the pace of their jobs, ranked by the GPU-seconds
-- the rest of each job spent waiting for them (kpi scope 'rack', straggler_cost_gpu_s: every
-- rack every tick, not only each tick's top N), with what that waiting cost: the IT energy of
-- a waiting GPU-second (the facility's straggler_wait_j per straggler-waiting GPU-second) at
-- the run's average price. Hall, campus and model come from the run's newest GPU snapshot.
-- params: run_id (text), top (integer, default 10)
WITH waits AS (
    SELECT scope_id AS rack_id,
           sum(straggler_cost_gpu_s) AS gpu_seconds_waited,
           count(*) FILTER (WHERE straggler_cost_gpu_s > 0) AS ticks_pacing
    FROM kpi
    WHERE run_id = $run_id AND scope = 'rack'
    GROUP BY scope_id
    HAVING sum(straggler_cost_gpu_s) > 0
),
price AS (
    SELECT sum(straggler_wait_j)
               / nullif(sum(straggler_wait * gpus * (tick_end_ns - tick_start_ns) / 1e9), 0)
               AS j_per_gpu_s,
           sum(energy_usd) / nullif(sum(energy_j), 0) AS usd_per_j
    FROM kpi WHERE run_id = $run_id AND scope = 'facility'
),
racks AS (
    SELECT rack_id, any_value(hall_id) AS hall_id, any_value(campus_id) AS campus_id,
           any_value(model) AS model
    FROM gpu_snapshot
    WHERE run_id = $run_id
      AND snapshot_id = (SELECT max(snapshot_id) FROM gpu_snapshot WHERE run_id = $run_id)
    GROUP BY rack_id
)
SELECT
    rank() OVER (ORDER BY gpu_seconds_waited DESC)             AS rank,
    w.rack_id,
    r.hall_id,
    r.campus_id,
    r.model,
    w.gpu_seconds_waited,
    w.gpu_seconds_waited / sum(w.gpu_seconds_waited) OVER ()   AS share,
    w.ticks_pacing,
    w.gpu_seconds_waited * p.j_per_gpu_s / 3.6e6               AS kwh_waited,
    w.gpu_seconds_waited * p.j_per_gpu_s * p.usd_per_j         AS usd_waited
FROM waits w CROSS JOIN price p LEFT JOIN racks r USING (rack_id)
ORDER BY w.gpu_seconds_waited DESC, w.rack_id
LIMIT $top;
