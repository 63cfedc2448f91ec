-- trailsight activities as JSON Lines, for Athena (engine version 3) and the Glue Data Catalog.
--
-- One row per activity (the Insights that tell one story, grouped as the report groups them),
-- read from the tree trailsight writes under
-- OUT/activities/account=ACCOUNT/region=REGION/date=YYYY-MM-DD/activities.jsonl.
-- Field by field: README, "Activities as data". A test compares these columns with the keys of
-- the lines a run writes.
--
-- Before running it, replace:
--   s3://amzn-s3-demo-bucket/trailsight/   the S3 location you gave as --out (keep activities/)
--   111122223333,444455556666              your account IDs (or 'projection.account.type' =
--                                          'injected', as in athena-insights-parquet.sql)
-- Partition projection as in athena-insights-parquet.sql: nothing to run after later runs.
-- Join an activity to its Insights with
--   CROSS JOIN UNNEST(a.sharedeventids) AS t(id) JOIN trailsight_insights i ON i.sharedeventid = t.id
CREATE EXTERNAL TABLE IF NOT EXISTS trailsight_activities (
  recipientaccountid STRING,
  awsregion STRING,
  starttime STRING,
  endtime STRING,
  open BOOLEAN,
  sharedeventids ARRAY<STRING>,
  apis ARRAY<STRING>,
  eventsources ARRAY<STRING>,
  eventnames ARRAY<STRING>,
  insighttypes ARRAY<STRING>,
  topcallers ARRAY<STRING>,
  severityscore DOUBLE,
  rarity DOUBLE,
  magnitude DOUBLE,
  newapi BOOLEAN,
  newcaller BOOLEAN,
  errorrateinsights BIGINT,
  reasons ARRAY<STRING>,
  reasontexts ARRAY<STRING>
)
PARTITIONED BY (
  account STRING,
  region STRING,
  `date` STRING
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://amzn-s3-demo-bucket/trailsight/activities/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.account.type' = 'enum',
  'projection.account.values' = '111122223333,444455556666',
  'projection.region.type' = 'enum',
  'projection.region.values' = 'us-east-1,us-east-2,us-west-1,us-west-2,af-south-1,ap-east-1,ap-east-2,ap-south-1,ap-south-2,ap-southeast-1,ap-southeast-2,ap-southeast-3,ap-southeast-4,ap-southeast-5,ap-southeast-7,ap-northeast-1,ap-northeast-2,ap-northeast-3,ca-central-1,ca-west-1,eu-central-1,eu-central-2,eu-west-1,eu-west-2,eu-west-3,eu-south-1,eu-south-2,eu-north-1,il-central-1,me-south-1,me-central-1,mx-central-1,sa-east-1',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = '2019-01-01,NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://amzn-s3-demo-bucket/trailsight/activities/account=${account}/region=${region}/date=${date}'
);
