-- Example queries on the Parquet table (schemas/athena-insights-parquet.sql), in Athena's SQL
-- (Trino). The tests run each query below, unchanged except for one documented rewrite of
-- UNNEST (DuckDB unnests an array of structs into one struct column, Athena into one column per
-- field), with DuckDB on the Parquet tree of the sample data, and check the answers.
--
-- Filter on the partition columns (account, region, "date") where you can: Athena then reads
-- only those folders. Adjust the date range to yours.

-- name: insights_per_api_per_week
-- Insights started per week and API (one Start record per Insight).
SELECT date_trunc('week', eventtime) AS week,
       recipientaccountid AS account,
       eventsource,
       eventname,
       insighttype,
       count(*) AS insights
FROM trailsight_insights
WHERE state = 'Start'
  AND "date" BETWEEN '2019-10-01' AND '2019-12-31'
GROUP BY 1, 2, 3, 4, 5
ORDER BY week, insights DESC, account, eventsource, eventname, insighttype;

-- name: longest_episodes
-- The longest finished Insights: each Start joined to its End by sharedEventID. ended is the
-- minute after the last unusual minute; minutes is the End's insightDuration.
SELECT s.recipientaccountid AS account,
       s.awsregion AS region,
       s.eventsource,
       s.eventname,
       s.insighttype,
       s.errorcode,
       s.eventtime AS started,
       e.eventtime AS ended,
       e.insightduration AS minutes,
       s.baselineaverage AS baseline_per_minute,
       e.insightaverage AS insight_per_minute
FROM trailsight_insights s
JOIN trailsight_insights e
  ON e.sharedeventid = s.sharedeventid AND e.state = 'End'
WHERE s.state = 'Start'
  AND s."date" BETWEEN '2019-10-01' AND '2019-12-31'
  AND e."date" BETWEEN '2019-10-01' AND '2019-12-31'
ORDER BY minutes DESC, started
LIMIT 10;

-- name: top_attributed_identities
-- The callers behind the most Insights: the userIdentityArn attribution of each Insight's Start
-- (assumed-role ARNs without the session name, as AWS writes them), with the highest rate each
-- reached in the first unusual minute.
SELECT recipientaccountid AS account,
       value AS identity,
       count(*) AS insights,
       max(average) AS max_calls_per_minute
FROM trailsight_insights
CROSS JOIN UNNEST(insightdetails.insightcontext.attributions) AS a(attribute, insight, baseline)
CROSS JOIN UNNEST(insight) AS i(value, average)
WHERE state = 'Start'
  AND attribute = 'userIdentityArn'
  AND "date" BETWEEN '2019-10-01' AND '2019-12-31'
GROUP BY 1, 2
ORDER BY insights DESC, max_calls_per_minute DESC, identity
LIMIT 20;
