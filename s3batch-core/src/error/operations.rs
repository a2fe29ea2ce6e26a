//! Every aws-sdk-s3 operation's error type, so that an `SdkError` of any of them is found by
//! downcasting wherever it sits in an error's `source()` chain: boxed, inside `anyhow`, inside
//! a user's error, or as the source of `aws_sdk_s3::Error::Unhandled` (which is where a timeout
//! or a dispatch failure goes when `?` converts it into `aws_sdk_s3::Error`). The test
//! `every_operation_is_listed` compares the list with the aws-sdk-s3 source in use.

use super::sdk::{classified_service_error, from_sdk_error};
use super::TaskError;
use aws_sdk_s3::operation;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use std::error::Error as StdError;

/// What a link of a chain says, if it is an S3 operation's error.
pub(super) enum Found {
    /// The link decides the outcome.
    Classified(TaskError),
    /// An SDK wrapper that says nothing by itself (no code); look at its source.
    Transparent,
}

macro_rules! operations {
    ($($module:ident :: $error:ident),* $(,)?) => {
        /// `e` as an `SdkError` of an S3 operation, or as an operation's error.
        pub(super) fn find(e: &(dyn StdError + 'static)) -> Option<Found> {
            $(
                if let Some(sdk) = e.downcast_ref::<SdkError<operation::$module::$error, HttpResponse>>() {
                    return Some(Found::Classified(from_sdk_error(sdk)));
                }
                if let Some(op) = e.downcast_ref::<operation::$module::$error>() {
                    return Some(classified_service_error(op).map_or(Found::Transparent, Found::Classified));
                }
            )*
            None
        }

        /// The operation modules listed above.
        #[cfg(test)]
        pub(super) const LISTED: &[&str] = &[$(stringify!($module)),*];
    };
}

operations! {
    abort_multipart_upload::AbortMultipartUploadError,
    complete_multipart_upload::CompleteMultipartUploadError,
    copy_object::CopyObjectError,
    create_bucket::CreateBucketError,
    create_bucket_metadata_configuration::CreateBucketMetadataConfigurationError,
    create_bucket_metadata_table_configuration::CreateBucketMetadataTableConfigurationError,
    create_multipart_upload::CreateMultipartUploadError,
    create_session::CreateSessionError,
    delete_bucket::DeleteBucketError,
    delete_bucket_analytics_configuration::DeleteBucketAnalyticsConfigurationError,
    delete_bucket_cors::DeleteBucketCorsError,
    delete_bucket_encryption::DeleteBucketEncryptionError,
    delete_bucket_intelligent_tiering_configuration::DeleteBucketIntelligentTieringConfigurationError,
    delete_bucket_inventory_configuration::DeleteBucketInventoryConfigurationError,
    delete_bucket_lifecycle::DeleteBucketLifecycleError,
    delete_bucket_metadata_configuration::DeleteBucketMetadataConfigurationError,
    delete_bucket_metadata_table_configuration::DeleteBucketMetadataTableConfigurationError,
    delete_bucket_metrics_configuration::DeleteBucketMetricsConfigurationError,
    delete_bucket_ownership_controls::DeleteBucketOwnershipControlsError,
    delete_bucket_policy::DeleteBucketPolicyError,
    delete_bucket_replication::DeleteBucketReplicationError,
    delete_bucket_tagging::DeleteBucketTaggingError,
    delete_bucket_website::DeleteBucketWebsiteError,
    delete_object::DeleteObjectError,
    delete_object_annotation::DeleteObjectAnnotationError,
    delete_object_tagging::DeleteObjectTaggingError,
    delete_objects::DeleteObjectsError,
    delete_public_access_block::DeletePublicAccessBlockError,
    get_bucket_abac::GetBucketAbacError,
    get_bucket_accelerate_configuration::GetBucketAccelerateConfigurationError,
    get_bucket_acl::GetBucketAclError,
    get_bucket_analytics_configuration::GetBucketAnalyticsConfigurationError,
    get_bucket_cors::GetBucketCorsError,
    get_bucket_encryption::GetBucketEncryptionError,
    get_bucket_intelligent_tiering_configuration::GetBucketIntelligentTieringConfigurationError,
    get_bucket_inventory_configuration::GetBucketInventoryConfigurationError,
    get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationError,
    get_bucket_location::GetBucketLocationError,
    get_bucket_logging::GetBucketLoggingError,
    get_bucket_metadata_configuration::GetBucketMetadataConfigurationError,
    get_bucket_metadata_table_configuration::GetBucketMetadataTableConfigurationError,
    get_bucket_metrics_configuration::GetBucketMetricsConfigurationError,
    get_bucket_notification_configuration::GetBucketNotificationConfigurationError,
    get_bucket_ownership_controls::GetBucketOwnershipControlsError,
    get_bucket_policy::GetBucketPolicyError,
    get_bucket_policy_status::GetBucketPolicyStatusError,
    get_bucket_replication::GetBucketReplicationError,
    get_bucket_request_payment::GetBucketRequestPaymentError,
    get_bucket_tagging::GetBucketTaggingError,
    get_bucket_versioning::GetBucketVersioningError,
    get_bucket_website::GetBucketWebsiteError,
    get_object::GetObjectError,
    get_object_acl::GetObjectAclError,
    get_object_annotation::GetObjectAnnotationError,
    get_object_attributes::GetObjectAttributesError,
    get_object_legal_hold::GetObjectLegalHoldError,
    get_object_lock_configuration::GetObjectLockConfigurationError,
    get_object_retention::GetObjectRetentionError,
    get_object_tagging::GetObjectTaggingError,
    get_object_torrent::GetObjectTorrentError,
    get_public_access_block::GetPublicAccessBlockError,
    head_bucket::HeadBucketError,
    head_object::HeadObjectError,
    list_bucket_analytics_configurations::ListBucketAnalyticsConfigurationsError,
    list_bucket_intelligent_tiering_configurations::ListBucketIntelligentTieringConfigurationsError,
    list_bucket_inventory_configurations::ListBucketInventoryConfigurationsError,
    list_bucket_metrics_configurations::ListBucketMetricsConfigurationsError,
    list_buckets::ListBucketsError,
    list_directory_buckets::ListDirectoryBucketsError,
    list_multipart_uploads::ListMultipartUploadsError,
    list_object_annotations::ListObjectAnnotationsError,
    list_object_versions::ListObjectVersionsError,
    list_objects::ListObjectsError,
    list_objects_v2::ListObjectsV2Error,
    list_parts::ListPartsError,
    put_bucket_abac::PutBucketAbacError,
    put_bucket_accelerate_configuration::PutBucketAccelerateConfigurationError,
    put_bucket_acl::PutBucketAclError,
    put_bucket_analytics_configuration::PutBucketAnalyticsConfigurationError,
    put_bucket_cors::PutBucketCorsError,
    put_bucket_encryption::PutBucketEncryptionError,
    put_bucket_intelligent_tiering_configuration::PutBucketIntelligentTieringConfigurationError,
    put_bucket_inventory_configuration::PutBucketInventoryConfigurationError,
    put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationError,
    put_bucket_logging::PutBucketLoggingError,
    put_bucket_metrics_configuration::PutBucketMetricsConfigurationError,
    put_bucket_notification_configuration::PutBucketNotificationConfigurationError,
    put_bucket_ownership_controls::PutBucketOwnershipControlsError,
    put_bucket_policy::PutBucketPolicyError,
    put_bucket_replication::PutBucketReplicationError,
    put_bucket_request_payment::PutBucketRequestPaymentError,
    put_bucket_tagging::PutBucketTaggingError,
    put_bucket_versioning::PutBucketVersioningError,
    put_bucket_website::PutBucketWebsiteError,
    put_object::PutObjectError,
    put_object_acl::PutObjectAclError,
    put_object_annotation::PutObjectAnnotationError,
    put_object_legal_hold::PutObjectLegalHoldError,
    put_object_lock_configuration::PutObjectLockConfigurationError,
    put_object_retention::PutObjectRetentionError,
    put_object_tagging::PutObjectTaggingError,
    put_public_access_block::PutPublicAccessBlockError,
    rename_object::RenameObjectError,
    restore_object::RestoreObjectError,
    select_object_content::SelectObjectContentError,
    update_bucket_metadata_annotation_table_configuration::UpdateBucketMetadataAnnotationTableConfigurationError,
    update_bucket_metadata_inventory_table_configuration::UpdateBucketMetadataInventoryTableConfigurationError,
    update_bucket_metadata_journal_table_configuration::UpdateBucketMetadataJournalTableConfigurationError,
    update_object_encryption::UpdateObjectEncryptionError,
    upload_part::UploadPartError,
    upload_part_copy::UploadPartCopyError,
    write_get_object_response::WriteGetObjectResponseError,
}
