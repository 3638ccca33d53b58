-- thermal_hotspots: the hottest racks at a GPU snapshot (default: the run's newest), from the
-- per-GPU temperatures in gpu_snapshot: each rack's hottest GPU, mean temperature, how many of
-- its GPUs are at or above hot_c, and its board power. GPUs with no reading are left out.
-- snapshot_id = 0 means the newest snapshot of the run.
-- params: run_id (text), top (integer, default 10), hot_c (number, default 80), snapshot_id (integer, default 0)
WITH snap AS (
    SELECT CASE WHEN $snapshot_id > 0 THEN $snapshot_id
                ELSE (SELECT max(snapshot_id) FROM gpu_snapshot WHERE run_id = $run_id) END AS id
),
g AS (
    SELECT * FROM gpu_snapshot
    WHERE run_id = $run_id AND snapshot_id = (SELECT id FROM snap) AND NOT isnan(temp_c)
)
SELECT
    rank() OVER (ORDER BY max(temp_c) DESC, avg(temp_c) DESC) AS rank,
    rack_id,
    any_value(hall_id)                                    AS hall_id,
    any_value(campus_id)                                  AS campus_id,
    any_value(model)                                      AS model,
    any_value(snapshot_id)                                AS snapshot_id,
    make_timestamp(any_value(tick_end_ns) // 1000)        AS event_time,
    count(*)                                              AS gpus,
    max(temp_c)                                           AS max_temp_c,
    arg_max(gpu_index, temp_c)                            AS hottest_gpu_index,
    avg(temp_c)                                           AS mean_temp_c,
    count(*) FILTER (WHERE temp_c >= $hot_c)              AS gpus_at_or_above_hot_c,
    sum(power_w) / 1e3                                    AS board_power_kw
FROM g
GROUP BY rack_id
ORDER BY max_temp_c DESC, mean_temp_c DESC, rack_id
LIMIT $top;
