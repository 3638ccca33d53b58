-- mfu_over_time: MFU over event time for the facility and each campus, hall and GPU generation,
-- per tick or in buckets of bucket_s seconds (bucket MFU = credited FLOPs / peak FLOPs in it).
-- t_s counts seconds from the run's first tick; event_time is the bucket's start (UTC).
-- scope: facility, campus, hall, generation, or all.
-- params: run_id (text), bucket_s (number, default 0 = one row per tick), scope (text, default all)
WITH k AS (
    SELECT *, min(tick_start_ns) OVER () AS t0
    FROM kpi
    WHERE run_id = $run_id
      AND scope IN ('facility', 'campus', 'hall', 'generation')
      AND ($scope = 'all' OR scope = $scope)
),
b AS (
    SELECT *,
        CASE WHEN CAST($bucket_s AS DOUBLE) > 0
             THEN t0 + CAST(floor((tick_start_ns - t0) / (CAST($bucket_s AS DOUBLE) * 1e9))
                            * CAST($bucket_s AS DOUBLE) * 1e9 AS BIGINT)
             ELSE tick_start_ns END AS bucket_ns
    FROM k
)
SELECT
    make_timestamp(bucket_ns // 1000)                     AS event_time,
    (bucket_ns - any_value(t0)) / 1e9                     AS t_s,
    scope,
    scope_id,
    count(*)                                              AS ticks,
    avg(gpus)                                             AS gpus,
    sum(flops) / nullif(sum(peak_flops), 0)               AS mfu,
    sum(compute * gpus) / nullif(sum(gpus), 0)            AS compute,
    sum(straggler_wait * gpus) / nullif(sum(gpus), 0)     AS straggler_wait,
    sum(comm_stall * gpus) / nullif(sum(gpus), 0)         AS comm_stall,
    sum(energy_j) / nullif(sum(tick_end_ns - tick_start_ns) / 1e9, 0) / 1e6 AS mean_power_mw
FROM b
GROUP BY bucket_ns, scope, scope_id
ORDER BY bucket_ns,
         list_position(['facility', 'campus', 'hall', 'generation'], scope),
         scope_id;
