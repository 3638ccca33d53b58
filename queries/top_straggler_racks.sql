-- top_straggler_racks: the racks whose GPUs set the pace of their jobs, ranked by the GPU-seconds
-- the rest of each job spent waiting for them, with what that waiting cost in energy.
-- params: run_id (text), top (integer, default 10 in `twin query`)
WITH waits AS (
    SELECT id AS rack_id, sum(cost_gpu_s) AS gpu_seconds_waited
    FROM stragglers
    WHERE run_id = $run_id AND level = 'rack'
    GROUP BY id
),
price AS (  -- energy of one waiting GPU-second at the run's average price and power per GPU
    SELECT sum(straggler_wait_j) / nullif(sum(straggler_wait * gpus * (tick_end_ns - tick_start_ns) / 1e9), 0) AS j_per_gpu_s,
           sum(energy_usd) / nullif(sum(energy_j), 0) AS usd_per_j
    FROM kpi WHERE run_id = $run_id AND scope = 'facility'
)
SELECT rack_id, gpu_seconds_waited,
       gpu_seconds_waited * j_per_gpu_s / 3.6e6 AS kwh_waited,
       gpu_seconds_waited * j_per_gpu_s * usd_per_j AS usd_waited
FROM waits, price
ORDER BY gpu_seconds_waited DESC
LIMIT $top;
