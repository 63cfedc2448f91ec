-- Insights in AWS's own JSON format and layout, for Athena: the files trailsight writes under
-- OUT/AWSLogs/[o-org/]ACCOUNT/CloudTrail-Insight/REGION/YYYY/MM/DD/*.json.gz, and equally the
-- files AWS CloudTrail Insights delivers to a trail's bucket. Each file is one
-- {"Records":[...]} document, which is what CloudTrailInputFormat reads (the same SerDe and
-- input format as AWS's official CloudTrail table). The columns are the fields of
-- schemas/insight-record.schema.json, lower-cased (the SerDe matches JSON keys without regard to
-- case); a test checks that they agree. eventtime is a STRING here, as in AWS's CloudTrail
-- table: use from_iso8601_timestamp(eventtime), or the Parquet table, for time arithmetic.
-- insightdetails.sourceeventcategory is Management or Data (Insights on data events, written
-- with --event-categories data, whose attributions end with a resourceArn one); insightsource
-- is the trail ARN AWS adds to its own data-event Insights (trailsight, offline, never knows it).
--
-- Before running it, replace:
--   s3://amzn-s3-demo-bucket/trailsight/AWSLogs/o-a1b2c3d4e5/   where the Insights are: for
--     an account trail drop the o-... organization folder; for AWS's own Insights use the trail
--     bucket and prefix
--   111122223333,444455556666   your account IDs
--
-- Partition projection as in AWS's CloudTrail table: region as an enum, the delivery day
-- (YYYY/MM/DD) as a date projection named `timestamp` (backticks: a reserved word in DDL).
-- trailsight files each day's records under that day, so the folder day is the eventtime day.
CREATE EXTERNAL TABLE IF NOT EXISTS trailsight_insights_json (
  eventversion STRING,
  eventtime STRING,
  awsregion STRING,
  eventid STRING,
  eventtype STRING,
  recipientaccountid STRING,
  sharedeventid STRING,
  insightdetails STRUCT<
    state: STRING,
    eventsource: STRING,
    eventname: STRING,
    insighttype: STRING,
    errorcode: STRING,
    sourceeventcategory: STRING,
    insightsource: STRING,
    insightcontext: STRUCT<
      statistics: STRUCT<
        baseline: STRUCT<average: DOUBLE>,
        insight: STRUCT<average: DOUBLE>,
        insightduration: BIGINT,
        baselineduration: BIGINT>,
      attributions: ARRAY<STRUCT<
        attribute: STRING,
        insight: ARRAY<STRUCT<value: STRING, average: DOUBLE>>,
        baseline: ARRAY<STRUCT<value: STRING, average: DOUBLE>>>>>>,
  eventcategory STRING
)
PARTITIONED BY (
  account STRING,
  region STRING,
  `timestamp` STRING
)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://amzn-s3-demo-bucket/trailsight/AWSLogs/o-a1b2c3d4e5/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.account.type' = 'enum',
  'projection.account.values' = '111122223333,444455556666',
  'projection.region.type' = 'enum',
  'projection.region.values' = 'us-east-1,us-east-2,us-west-1,us-west-2,af-south-1,ap-east-1,ap-east-2,ap-south-1,ap-south-2,ap-southeast-1,ap-southeast-2,ap-southeast-3,ap-southeast-4,ap-southeast-5,ap-southeast-7,ap-northeast-1,ap-northeast-2,ap-northeast-3,ca-central-1,ca-west-1,eu-central-1,eu-central-2,eu-west-1,eu-west-2,eu-west-3,eu-south-1,eu-south-2,eu-north-1,il-central-1,me-south-1,me-central-1,mx-central-1,sa-east-1',
  'projection.timestamp.type' = 'date',
  'projection.timestamp.format' = 'yyyy/MM/dd',
  'projection.timestamp.range' = '2019/01/01,NOW',
  'projection.timestamp.interval' = '1',
  'projection.timestamp.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://amzn-s3-demo-bucket/trailsight/AWSLogs/o-a1b2c3d4e5/${account}/CloudTrail-Insight/${region}/${timestamp}'
);
