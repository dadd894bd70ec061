// The public entry point: a Traffic Manager profile in priority mode. DNS answers with the active
// region's Function App while its HTTPS health probe passes and with the standby's when it fails.
// Front Door is not used: it is a global edge service outside the EU Data Boundary, whereas Traffic
// Manager only answers DNS and never sees a request.
param profileName string

@allowed([
  'northeurope'
  'westeurope'
])
param activeRegion string

@allowed([
  'northeurope'
  'westeurope'
])
param standbyRegion string
param activeHostName string
param standbyHostName string

@description('Path of the Health function, probed over HTTPS.')
param healthPath string
param workspaceId string
param tags object

resource profile 'Microsoft.Network/trafficmanagerprofiles@2022-04-01' = {
  name: profileName
  location: 'global'
  tags: tags
  properties: {
    profileStatus: 'Enabled'
    trafficRoutingMethod: 'Priority'
    dnsConfig: {
      relativeName: profileName
      ttl: 30
    }
    monitorConfig: {
      protocol: 'HTTPS'
      port: 443
      path: healthPath
      intervalInSeconds: 30
      timeoutInSeconds: 10
      toleratedNumberOfFailures: 3
      expectedStatusCodeRanges: [
        {
          min: 200
          max: 299
        }
      ]
    }
    // Both endpoints are written by either regional deployment, identically, so deploying one region
    // never drops the other's endpoint. Names stay the region; only the priorities swap on failover.
    endpoints: [
      {
        name: activeRegion
        type: 'Microsoft.Network/trafficManagerProfiles/externalEndpoints'
        properties: {
          target: activeHostName
          endpointStatus: 'Enabled'
          endpointLocation: activeRegion
          priority: 1
        }
      }
      {
        name: standbyRegion
        type: 'Microsoft.Network/trafficManagerProfiles/externalEndpoints'
        properties: {
          target: standbyHostName
          endpointStatus: 'Enabled'
          endpointLocation: standbyRegion
          priority: 2
        }
      }
    ]
  }
}

resource profileDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: profile
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output fqdn string = profile.properties.dnsConfig.fqdn
output name string = profile.name
