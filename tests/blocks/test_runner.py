"""The EC2 runner block's clients reach the link's bucket and SSM."""

from orca_blocks import OrcaEc2Runner, OrcaLinkedCloudCredentials


def test_runner_clients_write_under_the_prefix_and_reach_ssm_through_the_link(
    linked_credentials: OrcaLinkedCloudCredentials, moto_endpoint: str
) -> None:
    runner = OrcaEc2Runner(
        targets=["tag:orca=worker"], output_bucket="orca-outputs", credentials=linked_credentials
    )
    s3 = runner.get_s3_client()
    s3.create_bucket(Bucket=runner.output_bucket)
    s3.put_object(Bucket=runner.output_bucket, Key=f"{runner.output_prefix}probe", Body=b"ok")
    ssm = runner.get_ssm_client()

    listed = s3.list_objects_v2(Bucket=runner.output_bucket)
    assert [item["Key"] for item in listed["Contents"]] == ["orca/probe"]
    assert ssm.list_commands()["Commands"] == []
    assert ssm.meta.endpoint_url == moto_endpoint
